import sys

from tests.support.harmony_model import build_harmony_model

print(build_harmony_model(refresh="--refresh" in sys.argv[1:]))
