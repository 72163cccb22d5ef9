# expect: RE
# One ever-growing file: RLIMIT_FSIZE stops it (SIGXFSZ).
with open("/tmp/big", "wb") as f:
    block = b"\0" * (1 << 20)
    while True:
        f.write(block)
        f.flush()
