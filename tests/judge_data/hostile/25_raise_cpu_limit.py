# expect: TLE
# Ignore SIGXCPU and lift the soft CPU limit to the hard one: the hard limit still kills.
import resource
import signal
signal.signal(signal.SIGXCPU, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
for lim in ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (hard, hard)):
    try:
        resource.setrlimit(resource.RLIMIT_CPU, lim)
    except (ValueError, OSError):
        pass
while True:
    pass
