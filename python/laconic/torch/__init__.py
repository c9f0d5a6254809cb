"""PyTorch integration of Laconic: a DDP communication hook and a
``torch.distributed`` backend (importing this module registers "laconic").

    import laconic, laconic.torch
    dist.init_process_group("laconic")                        # Gloo-like backend
    state = laconic.torch.HookState(comm, codec="onebit", model=model)
    model.register_comm_hook(state, laconic.torch.allreduce_hook)
    opt = laconic.torch.CompressedAdam(model.parameters(), comm, codec="topk:0.01")
"""

from .backend import LaconicOptions, LaconicWork, ProcessGroupLaconic, communicator, register
from .hook import HookState, allreduce_hook
from .optim import CompressedAdam

register()

__all__ = ["CompressedAdam", "HookState", "allreduce_hook", "ProcessGroupLaconic", "LaconicOptions",
           "LaconicWork", "communicator", "register"]
