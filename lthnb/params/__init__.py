"""The experiment's parameters: the schema (the one place a parameter is written by hand), its
checks and YAML loading. Imports only the registries below it (data, nets, pruning, controls).
"""

from lthnb.params.schema import (
    PARAMETER_NAMES,
    REMOVED_PARAMETERS,
    Params,
    ParamsError,
    load_params,
    parameter_help,
)

__all__ = [
    "PARAMETER_NAMES",
    "REMOVED_PARAMETERS",
    "Params",
    "ParamsError",
    "load_params",
    "parameter_help",
]
