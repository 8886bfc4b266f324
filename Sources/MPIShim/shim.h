// MPIShim: <mpi.h> for Swift.
//
// OpenMPI defines its predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) as
// macros that take the address of global structs; Swift cannot import such macros, so each
// one gets a static inline accessor here. Only Sources/DistTrain imports this module.
#ifndef DISTTRAIN_MPISHIM_H
#define DISTTRAIN_MPISHIM_H

#include <mpi.h>

static inline MPI_Comm shim_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm shim_comm_null(void) { return MPI_COMM_NULL; }

static inline MPI_Datatype shim_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype shim_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype shim_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype shim_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Datatype shim_byte(void) { return MPI_BYTE; }

static inline MPI_Op shim_op_sum(void) { return MPI_SUM; }
static inline MPI_Op shim_op_max(void) { return MPI_MAX; }
static inline MPI_Op shim_op_min(void) { return MPI_MIN; }

static inline void *shim_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request shim_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *shim_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *shim_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline MPI_Errhandler shim_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info shim_info_null(void) { return MPI_INFO_NULL; }

static inline int shim_success(void) { return MPI_SUCCESS; }
static inline int shim_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int shim_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int shim_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int shim_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

#endif
