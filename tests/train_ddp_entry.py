"""Entry point for the torchrun test: the real ``inpaintbench`` CLI, plus the two test-only registrations
a fresh process needs (the 128 px mask protocol and the random VGG19's hash).

Usage: ``torchrun --nproc_per_node=K tests/train_ddp_entry.py VGG19_SHA256 train ...``
"""

from __future__ import annotations

import dataclasses
import sys

import torch


def main() -> int:
    from train_fixtures import VGG19_ID, register_protocol_128

    from inpaintbench import weights as W
    from inpaintbench.cli import main as cli_main

    torch.set_num_threads(1)
    register_protocol_128()
    digest, argv = sys.argv[1], sys.argv[2:]
    spec = W.get_weight_spec(VGG19_ID)
    W.register_weights(dataclasses.replace(spec, urls=(), sha256=digest, sha256_prefix=None, size=None),
                       replace=True)
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
