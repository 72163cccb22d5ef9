# expect: OK
import os
done = []
for p in ("/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches",
          "/proc/self/oom_score_adj"):
    try:
        with open(p, "w") as f:
            f.write("-1000" if "oom" in p else "b")
        done.append(p)
    except OSError:
        pass
print("safe" if not done else "wrote " + " ".join(done))
