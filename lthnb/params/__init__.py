"""The experiment's parameters: the schema (the one place a parameter is written by hand), the
checks of each value and of their combinations, YAML loading, and `sync`, which regenerates
every copy of the schema. Imports only the registries below it (data, nets, controls).
"""

from lthnb.params.loading import load_params
from lthnb.params.schema import (
    PARAMETER_NAMES,
    REMOVED_PARAMETERS,
    RESUMABLE_PARAMETERS,
    Params,
    ParamsError,
    default_values,
    network_defaults,
    parameter_help,
)

__all__ = [
    "PARAMETER_NAMES",
    "REMOVED_PARAMETERS",
    "RESUMABLE_PARAMETERS",
    "Params",
    "ParamsError",
    "default_values",
    "load_params",
    "network_defaults",
    "parameter_help",
]
