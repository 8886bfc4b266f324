// zlib: gzip input (IDX files) and deflate + crc32 for PNG output.
#include <zlib.h>
