"""Location search: every (layer, positions) variant on the development concepts; the best is used after."""


checkpoint locate:
    conda:
        "../envs/prosv.yaml"
    input:
        ratings=locate_ratings(),
    output:
        choice=f"{OUT}/locate/choice.json",
        table=f"{OUT}/tables/locate.parquet",
    params:
        candidates=config["locate"]["positions"],
    log:
        f"{OUT}/logs/locate.log",
    threads: 1
    script:
        "../scripts/locate.py"
