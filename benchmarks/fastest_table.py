"""Write qtool/fastest.toml (what `qtool plan` and `qtool serve` say is fastest) from bench records.

    python benchmarks/fastest_table.py --model qwen2-vl-2b \
        benchmarks/results/qwen2-vl-2b-random-vllm-cpu/serving.json \
        benchmarks/results/qwen2-vl-2b-random-cpu-gguf/bench.json=cpu-avx512_bf16

Every record is one table; a record that predates ``cpu_flags`` names its device class after ``=``.
"""

import argparse
import json
from pathlib import Path

from qtool import fastest

REPO = Path(__file__).resolve().parents[1]


def rows_for(record: str, model: str, device_class: str | None = None) -> list[fastest.Measured]:
    return fastest.from_record(json.loads((REPO / record).read_text()), record, model, device_class)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", help="RECORD or RECORD=DEVICE_CLASS")
    ap.add_argument("--model", required=True, help="the shape the records measured, e.g. qwen2-vl-2b")
    args = ap.parse_args()
    rows = []
    for arg in args.records:
        record, _, klass = arg.partition("=")
        rows += rows_for(str(Path(record).resolve().relative_to(REPO)), args.model, klass or None)
    fastest.TABLE.write_text(fastest.to_toml(rows))
    print(f"{len(rows)} rows -> {fastest.TABLE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
