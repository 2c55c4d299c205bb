"""FSDP on CPU processes: the same accelerate/torch sharding code as on GPUs, over gloo instead of NCCL.

`accelerate launch --use_fsdp` starts one process per GPU and sets ACCELERATE_USE_FSDP=true. On GPUs,
AcceleratorState then turns MULTI_GPU into FSDP; accelerate 1.15 does that for GPU-like devices only, so
on CPU (MULTI_CPU over gloo) it would quietly train with DDP. `fsdp_on_cpu()` makes the one change that is
missing: the state becomes FSDP with the plugin accelerate built from the launcher's flags. Everything after
that (fully_shard per decoder layer, DTensor parameters, sharded checkpoints, the gathered final state dict)
is accelerate's and torch's own code, as on GPUs. See docs/training.md ("Several GPUs").
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger("agorabench.training")


def wants_fsdp_on_cpu(cuda: bool) -> bool:
    """True in a process that `accelerate launch --use_fsdp` started with several processes and no CUDA."""
    launched = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    return launched and not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def fsdp_on_cpu(enabled: bool) -> Iterator[None]:
    """While active, an AcceleratorState created for CPU processes with an FSDP plugin uses FSDP."""
    if not enabled:
        yield
        return
    from accelerate import state as acc_state
    from accelerate.utils import DistributedType

    original = acc_state.AcceleratorState.__init__

    def init(self, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        plugin = kwargs.get("fsdp_plugin")  # only the Accelerator's first call passes it
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            if self._mixed_precision != "no":
                plugin.set_mixed_precision(self._mixed_precision)  # what accelerate does for GPUs
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin
            # As accelerate does at the end of its own init: later AcceleratorState() calls copy this back.
            acc_state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP
            log.info("FSDP%d on %d CPU processes (gloo)", plugin.fsdp_version, self.num_processes)

    acc_state.AcceleratorState.__init__ = init
    try:
        yield
    finally:
        acc_state.AcceleratorState.__init__ = original


def sharding_summary(model) -> dict | None:
    """How this process holds the trained parameters: None without FSDP, else the DTensor layout."""
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    sharded = [p for p in params if isinstance(p, DTensor)]
    if not sharded:
        return None
    total = sum(p.numel() for p in sharded)
    local = sum(p.to_local().numel() for p in sharded)
    return {
        "dtensor_parameters": len(sharded),
        "parameters": len(params),
        "placements": sorted({repr(pl) for p in sharded for pl in p.placements}),  # e.g. Shard(dim=0)
        "local_fraction": round(local / total, 4),  # 1/N when fully sharded over N processes
    }
