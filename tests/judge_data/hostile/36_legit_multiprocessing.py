# expect: OK
# expect-one-process: RE (no process but the program's own may start: memory.py)
# A well-behaved program may use processes, threads and /dev/shm.
import multiprocessing as mp
import threading


def sq(x):
    return x * x


if __name__ == "__main__":
    with mp.Pool(2) as pool:
        assert pool.map(sq, range(10)) == [x * x for x in range(10)]
    out = []
    t = threading.Thread(target=lambda: out.append(sum(range(1000))))
    t.start()
    t.join()
    assert out == [499500]
    print("safe")
