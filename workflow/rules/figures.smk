"""Tables (aggregate) and figures, markdown tables and SUMMARY.md (figures), from parquet only.

`aggregate` collects the raw outputs (ratings, training logs, utility, robustness, LoReFT
comparison) into tidy tables under {OUT}/tables/. `figures` reads only those tables and the location
choice, loads no model and runs in seconds: `snakemake figures` redraws everything once the tables
exist.
"""


# every table the figures and SUMMARY.md are drawn from
TABLES = ["main", "main_concepts", "losses", "utility", "utility_concepts", "robustness", "robustness_concepts",
          "loreft", "loreft_cosine", "loreft_spread", "scaling", "scaling_concepts", "locate", "locate_concepts",
          "examples"]


rule aggregate:
    conda:
        "../envs/prosv.yaml"
    input:
        fixed=get_fixed_ratings,
        placed=get_placed_ratings,
        main_losses=get_main_losses,
        locate_losses=get_locate_losses,
        accuracy=f"{OUT}/utility/accuracy.parquet",
        attack=f"{OUT}/ratings/robustness/attack.parquet",
        loreft_losses=f"{OUT}/compare/loreft_losses.parquet",
        loreft_cosine=f"{OUT}/compare/loreft_cosine.parquet",
        loreft_spread=f"{OUT}/compare/loreft_spread.parquet",
        scaling_cells=f"{OUT}/scaling/cells.parquet",
        scaling_losses=f"{OUT}/scaling/losses.parquet",
        scaling_ratings=f"{OUT}/ratings/scaling.parquet",
    output:
        main=f"{OUT}/tables/main.parquet",
        main_concepts=f"{OUT}/tables/main_concepts.parquet",
        losses=f"{OUT}/tables/losses.parquet",
        utility=f"{OUT}/tables/utility.parquet",
        utility_concepts=f"{OUT}/tables/utility_concepts.parquet",
        robustness=f"{OUT}/tables/robustness.parquet",
        robustness_concepts=f"{OUT}/tables/robustness_concepts.parquet",
        loreft=f"{OUT}/tables/loreft.parquet",
        loreft_cosine=f"{OUT}/tables/loreft_cosine.parquet",
        loreft_spread=f"{OUT}/tables/loreft_spread.parquet",
        scaling=f"{OUT}/tables/scaling.parquet",
        scaling_concepts=f"{OUT}/tables/scaling_concepts.parquet",
        examples=f"{OUT}/tables/examples.parquet",
    params:
        n_boot=10000,
        seed=config["seed"],
    log:
        f"{OUT}/logs/aggregate.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    script:
        "../scripts/aggregate.py"


rule figures:
    conda:
        "../envs/prosv.yaml"
    input:
        **{name: f"{OUT}/tables/{name}.parquet" for name in TABLES},
        **get_task_tables(),
        choice=f"{OUT}/locate/choice.json",
        # read for their metadata only: the device, dtype and versions that made the numbers
        vectors=lambda w: list(get_main_vectors().values()),
    output:
        main_scores=report(f"{OUT}/figures/main_scores.png", caption="../report/main_scores.rst",
                           category="1. Main results"),
        locate_heatmap=report(f"{OUT}/figures/locate_heatmap.png", caption="../report/locate_heatmap.rst",
                              category="2. Location search"),
        scaling=report(f"{OUT}/figures/scaling.png", caption="../report/scaling.rst", category="3. Training"),
        loss_curves=report(f"{OUT}/figures/loss_curves.png", caption="../report/loss_curves.rst",
                           category="3. Training"),
        loreft_vs_prosv=report(f"{OUT}/figures/loreft_vs_prosv.png", caption="../report/loreft_vs_prosv.rst",
                               category="4. LoReFT comparison"),
        utility=report(f"{OUT}/figures/utility.png", caption="../report/utility.rst",
                       category="5. Utility and robustness"),
        robustness_vs_utility=report(f"{OUT}/figures/robustness_vs_utility.png",
                                     caption="../report/robustness_vs_utility.rst",
                                     category="5. Utility and robustness"),
        main_md=f"{OUT}/tables/main.md",
        summary=f"{OUT}/SUMMARY.md",
        summary_html=report(f"{OUT}/report/SUMMARY.html", caption="../report/summary.rst", category="0. Summary"),
        tables_html=report(f"{OUT}/report/tables.html", caption="../report/tables.rst", category="6. Tables"),
    params:
        model=config["model"],
        tables=TABLES + list(get_task_tables()),
        n_boot=10000,
        seed=config["seed"],
    log:
        f"{OUT}/logs/figures.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figures.py"
