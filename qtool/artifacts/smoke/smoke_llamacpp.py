"""Smoke-load one GGUF variant with llama-cpp-python and answer one image question (no qtool, no torch).

    python smoke_llamacpp.py VARIANT_DIR  -> prints a JSON line
"""

import base64
import io
import json
import math
import sys
from pathlib import Path

from llama_cpp import Llama
from llama_cpp.llama_chat_format import MTMDChatHandler
from PIL import Image

folder = Path(sys.argv[1])
manifest = json.loads((folder / "qtool.json").read_text())
model = folder / next(iter(manifest["files"].values()))
mmproj = folder / manifest["mmproj"]["file"]
llm = Llama(model_path=str(model), chat_handler=MTMDChatHandler(clip_model_path=str(mmproj), verbose=False),
            n_ctx=1024, logits_all=True, verbose=False)
buffer = io.BytesIO()
Image.new("RGB", (112, 112), (220, 40, 40)).save(buffer, format="PNG")
url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
reply = llm.create_chat_completion(messages=[{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Describe the image."}]}],
    max_tokens=4, temperature=0.0, logprobs=True, top_logprobs=1)
logprobs = [t["logprob"] for t in reply["choices"][0]["logprobs"]["content"]]
print(json.dumps({"loaded": f"llama.cpp {model.name} + {mmproj.name}", "output": f"{reply['usage']['completion_tokens']} tokens",
                  "finite": all(math.isfinite(x) for x in logprobs) and bool(logprobs),
                  "qtool_imported": "qtool" in sys.modules, "torch_imported": "torch" in sys.modules}))
