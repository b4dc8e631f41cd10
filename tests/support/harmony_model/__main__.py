from tests.support.harmony_model import build_harmony_model

print(build_harmony_model())
