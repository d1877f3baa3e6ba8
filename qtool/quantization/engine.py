"""Profiles -> GPTQModel configs. One handler per profile type."""

from __future__ import annotations

from collections.abc import Callable

from qtool.profiles import METHODS, AWQProfile, GPTQProfile, RTNProfile

_HANDLERS: dict[type, Callable] = {}


def handles(profile_type: type):
    def register(fn):
        _HANDLERS[profile_type] = fn
        return fn
    return register


def quantizes(profile) -> bool:
    """Whether ``qtool quantize`` makes this profile (GPTQModel runs it)."""
    return type(profile) in _HANDLERS


def quantizing_methods() -> tuple[str, ...]:
    return tuple(m for m, cls in METHODS.items() if cls in _HANDLERS)


def engine_config(profile, device: str):
    """The GPTQModel ``QuantizeConfig`` for ``profile``."""
    return _HANDLERS[type(profile)](profile, device)


@handles(GPTQProfile)
def _gptq(p: GPTQProfile, device: str):
    from gptqmodel import QuantizeConfig

    # act_group_aware stays off: Qwen's recipe is plain desc_act=False GPTQ.
    return QuantizeConfig(
        bits=p.bits, group_size=p.group_size, damp_percent=p.damp, desc_act=p.desc_act,
        sym=p.sym, true_sequential=p.true_sequential, act_group_aware=False, device=device,
    )


@handles(AWQProfile)
def _awq(p: AWQProfile, device: str):
    from gptqmodel import QuantizeConfig

    return QuantizeConfig(method="awq", format="gemm", bits=p.bits, group_size=p.group_size,
                          sym=not p.zero_point, device=device)


@handles(RTNProfile)
def _rtn(p: RTNProfile, device: str):
    from gptqmodel import QuantizeConfig

    return QuantizeConfig(bits=p.bits, group_size=p.group_size, sym=p.sym, desc_act=False,
                          weight_only={"method": "rtn"}, device=device)


def needs_calibration(profile) -> bool:
    return not isinstance(profile, RTNProfile)


def packs_calibration(profile) -> bool:
    """Whether calibration conversations are packed to one length so AWQ fits all of them (calibration.packing).

    Off by default: AWQ's search then runs over every token (tiny model, 16 samples, 2-core CPU: 119 s against 29 s).
    """
    return isinstance(profile, AWQProfile) and profile.pack_conversations
