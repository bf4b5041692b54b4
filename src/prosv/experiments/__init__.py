"""The experiments of the study, one module each (docs/method.md describes what each one measures).

- :mod:`.steering`: the main evaluation's responses (methods, baselines, the factor grid);
- :mod:`.location`: the location search and its choice;
- :mod:`.scaling`: factor init x factor rate, alpha fixed, SGD, rate transfer;
- :mod:`.tuning`: the sweep behind a model's recommended settings;
- :mod:`.utility`: accuracy on general tasks under steering;
- :mod:`.robustness`: steering under the concept-suppression attack;
- :mod:`.loreft`: rank-1 LoReFT against PrOSV, and the hidden-state spread behind it.
"""

from .location import choose_location, location_concepts, location_table
from .loreft import (
    compare_loreft,
    content_span,
    direction_cosines,
    hidden_state_spread,
    layer_outputs,
    loreft_config,
    spread_prompts,
    spread_stats,
)
from .robustness import attack_generations, attack_prompts
from .scaling import ScalingCell, run_scaling, scaling_cells, scaling_generations, scaling_prompts
from .steering import BASELINES, baseline_responses, vector_labels, vector_responses
from .tuning import recommended_settings, tuning_cells, tuning_grid, tuning_markdown, tuning_table
from .utility import (
    UTILITY_TASKS,
    Condition,
    UtilityTask,
    answer_task,
    choice_scores,
    evaluate_condition,
    evaluate_utility,
    first_concepts,
    load_utility_tasks,
    merge_utility,
    method_factors,
    parse_choice,
    parse_number,
    task_user_turn,
    utility_conditions,
)

__all__ = [
    "BASELINES",
    "UTILITY_TASKS",
    "Condition",
    "ScalingCell",
    "UtilityTask",
    "answer_task",
    "attack_generations",
    "attack_prompts",
    "baseline_responses",
    "choice_scores",
    "choose_location",
    "compare_loreft",
    "location_concepts",
    "content_span",
    "direction_cosines",
    "evaluate_condition",
    "evaluate_utility",
    "first_concepts",
    "hidden_state_spread",
    "layer_outputs",
    "load_utility_tasks",
    "location_table",
    "loreft_config",
    "merge_utility",
    "method_factors",
    "parse_choice",
    "parse_number",
    "run_scaling",
    "scaling_cells",
    "scaling_generations",
    "scaling_prompts",
    "spread_prompts",
    "spread_stats",
    "task_user_turn",
    "utility_conditions",
    "vector_labels",
    "vector_responses",
    "recommended_settings",
    "tuning_cells",
    "tuning_grid",
    "tuning_markdown",
    "tuning_table",
]
