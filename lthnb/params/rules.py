"""Rules that involve more than one parameter, checked after each value is valid."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from lthnb.nets.registry import network
from lthnb.params.schema import Params, ParamsError
from lthnb.params.values import show


def check_consistency(params: Params) -> None:
    """Rules that involve more than one parameter."""
    _check_paths(params)
    # os.path.expanduser leaves `~unknown_user` alone where Path.expanduser raises.
    if params.data_dir is not None and not Path(os.path.expanduser(params.data_dir)).is_dir():
        raise ParamsError(
            f"data_dir: {params.data_dir!r} is not a folder; create it with the data files "
            "or set data_dir: null to use the Keras cache"
        )
    if params.trial is not None and params.trial >= params.trials:
        raise ParamsError(
            f"trial: {params.trial} is not a trial of this run; use 0 .. {params.trials - 1} "
            "or null for all"
        )
    if params.rewind_iteration >= params.iterations:
        raise ParamsError(
            f"rewind_iteration: {params.rewind_iteration} must be < iterations "
            f"({params.iterations}); rewind to a point inside round 0's training"
        )
    if params.eval_every > params.iterations:
        raise ParamsError(
            f"eval_every: {params.eval_every} exceeds iterations ({params.iterations}); "
            "evaluate at least once per round"
        )
    _check_stability(params)
    milestones = params.lr_milestones
    if any(later <= earlier for earlier, later in zip(milestones, milestones[1:], strict=False)):
        raise ParamsError(f"lr_milestones: {milestones} must be strictly increasing")
    if milestones and milestones[-1] >= params.iterations:
        raise ParamsError(
            f"lr_milestones: {milestones[-1]} lies beyond the budget; milestones must be "
            f"< iterations ({params.iterations})"
        )
    needed = network(params.arch).min_dense_layers
    if len(params.dense_units) < needed:
        raise ParamsError(
            f"dense_units: {params.arch} needs at least {needed} hidden dense layer"
            f"{'s' if needed > 1 else ''}, e.g. [256, 256]"
        )
    rates = _prunable_rates(params)
    if params.rounds > 0 and not any(rates.values()):
        raise ParamsError(
            f"{', '.join(rates)}: 0 for every prunable layer of {params.arch} with rounds: "
            f"{params.rounds}, so nothing could be pruned; set one of them > 0 (a rate of 0 "
            "leaves its layers alone) or rounds: 0"
        )


def _check_paths(params: Params) -> None:
    """Every path parameter names a path the system can look up, before any is read or written."""
    paths = [("data_dir", params.data_dir), ("output_dir", params.output_dir)]
    paths += [("compare_with", path) for path in params.compare_with]
    for name, path in paths:
        if path is not None:
            _check_path(name, path)


def _check_path(name: str, path: str) -> None:
    """`path` may exist or not, but not be too long, hold a NUL or lie where one may not look."""
    try:
        os.stat(os.path.expanduser(path))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        fix = "give a shorter one" if error.errno == errno.ENAMETOOLONG else "give another one"
        raise ParamsError(
            f"{name}: {show(path)} is not a usable path ({error.strerror}); {fix}"
        ) from None
    except ValueError:  # os.stat refuses a NUL character
        raise ParamsError(f"{name}: {show(path)} holds a NUL character; remove it") from None


def _check_stability(params: Params) -> None:
    """The instability analysis needs a unit to study, inside the budget and the run's rounds."""
    for name in ("stability_rewind_iterations", "stability_rounds"):
        if not getattr(params, name):
            raise ParamsError(f"{name}: [] leaves nothing to analyse; give at least one, e.g. [0]")
    late = [k for k in params.stability_rewind_iterations if k >= params.iterations]
    if late:
        raise ParamsError(
            f"stability_rewind_iterations: {show(late)} must be < iterations "
            f"({params.iterations}); the copies train from iteration k to that end"
        )
    beyond = [r for r in params.stability_rounds if r > params.rounds]
    if beyond:
        raise ParamsError(
            f"stability_rounds: {show(beyond)} beyond rounds ({params.rounds}); use 0 (dense) "
            f"to {params.rounds}"
        )


def _prunable_rates(params: Params) -> dict[str, float]:
    """The rate parameters of the layer kinds `arch` has (LeNet has no conv layers)."""
    rates = {"conv_rate": params.conv_rate} if network(params.arch).has_conv else {}
    if params.dense_units:
        rates["dense_rate"] = params.dense_rate
    return {**rates, "output_rate": params.output_rate}
