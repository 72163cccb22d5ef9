# expect: RE
import ctypes
ctypes.string_at(0)
