"""WarmStartGridSampler, in parts: the grid (``_space``), its ranking (``_ranking``, no storage
access), the claim protocol (``_claims``, the only storage access) and the sampler on top
(``_sampler``)."""

from optuna_transfer._grid._claims import GRID_ID_ATTR_KEY
from optuna_transfer._grid._claims import PROBE_ATTR_KEY
from optuna_transfer._grid._claims import REPEAT_ATTR_KEY
from optuna_transfer._grid._claims import SEARCH_SPACE_ATTR_KEY
from optuna_transfer._grid._claims import SETTLED_ATTR_KEY
from optuna_transfer._grid._sampler import WarmStartGridSampler
from optuna_transfer._grid._space import check_value as _check_value
from optuna_transfer._grid._space import GridValueType
from optuna_transfer._grid._space import MAX_GRID_POINTS


__all__ = [
    "GRID_ID_ATTR_KEY",
    "GridValueType",
    "MAX_GRID_POINTS",
    "PROBE_ATTR_KEY",
    "REPEAT_ATTR_KEY",
    "SEARCH_SPACE_ATTR_KEY",
    "SETTLED_ATTR_KEY",
    "WarmStartGridSampler",
    "_check_value",
]
