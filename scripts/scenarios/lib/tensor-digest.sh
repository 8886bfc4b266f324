# Checkpoint digests for the scenario scripts (sourced, not run): what "the same parameters"
# means when two runs are compared (resume against an uninterrupted run, a fault-injected run
# against a clean one). Needs python3.

# tensor_digest FILE: sha256 of a safetensors file's tensors (names, dtypes, shapes, bytes);
# the header's __metadata__ (output directory, config) is left out, as it may differ.
tensor_digest() {
  python3 - "$1" <<'PY'
import hashlib, json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
print(hashlib.sha256(json.dumps(h, sort_keys=True).encode() + b[8 + n:]).hexdigest())
PY
}

# final_digest RUN: the digests of RUN's latest checkpoint's model and optimizer, on one line
# (empty fields when there is none).
final_digest() {
  local c="$1/checkpoints/$(cat "$1/checkpoints/latest" 2>/dev/null)"
  echo "$(tensor_digest "$c/model.safetensors" 2>/dev/null) $(tensor_digest "$c/optimizer.safetensors" 2>/dev/null)"
}
