# expect: RE TLE
import os
while True:
    os.fork()
