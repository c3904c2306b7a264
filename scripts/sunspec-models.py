#!/usr/bin/env python3
"""Writes hardware/sunspec/models.json: the layout of the SunSpec information models the gateway
decodes (points with their type, size, scale factor and units; groups with their count), taken
from the SunSpec Alliance's machine-readable model definitions (https://github.com/sunspec/models,
Apache-2.0). Descriptions, labels of points and enumerations are left out.

    python3 scripts/sunspec-models.py PATH/TO/sunspec-models-checkout > hardware/sunspec/models.json
"""
import json
import sys

MODELS = [1, 101, 102, 103, 111, 112, 113, 120, 121, 122, 123, 124, 160,
          201, 202, 203, 204, 701, 702, 703, 704, 705, 802]


def group(g):
    out = {"name": g["name"]}
    if "count" in g:
        out["count"] = g["count"]
    out["points"] = []
    for p in g["points"]:
        q = {"name": p["name"], "type": p["type"], "size": p.get("size", 1)}
        for k in ("sf", "units"):
            if k in p:
                q[k] = p[k]
        out["points"].append(q)
    if g.get("groups"):
        out["groups"] = [group(s) for s in g["groups"]]
    return out


def main(root):
    models = []
    for m in MODELS:
        with open(f"{root}/json/model_{m}.json") as f:
            d = json.load(f)
        models.append({"id": d["id"], "label": d["group"].get("label", ""), "group": group(d["group"])})
    json.dump({"source": "SunSpec Alliance information models, https://github.com/sunspec/models (Apache-2.0)",
               "models": models}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
