"""Smoke-load one ONNX vision variant in ONNX Runtime and encode one image (torch-free).

    python smoke_onnxruntime.py VARIANT_DIR  -> prints a JSON line
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from qtool.runtime.vision import VisionEncoder

folder = Path(sys.argv[1])
precision = json.loads((folder / "qtool.json").read_text())["profile"]["_data"]["precision"]
encoder = VisionEncoder(folder, precision)
out = encoder.encode([Image.new("RGB", (112, 140), (220, 40, 40))])
print(json.dumps({"loaded": f"onnxruntime {onnxruntime.__version__} {encoder.config.files[precision]}",
                  "output": f"{out.embeds.shape[0]}x{out.embeds.shape[1]} embeddings",
                  "finite": bool(np.isfinite(out.embeds).all()), "torch_imported": "torch" in sys.modules}))
