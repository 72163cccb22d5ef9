# expect: RE
import os
os.setuid(0)
print("safe")
