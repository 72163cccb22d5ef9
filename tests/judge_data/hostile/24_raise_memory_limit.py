# expect: MLE
# Try to lift the address-space limit (not allowed above the hard limit), then allocate 20 GB.
import resource
try:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
except (ValueError, OSError):
    pass
x = bytearray(20 * 1024**3)
print("safe")
