"""Reports of a run, all from the one result model: the terminal summary, the CI job summary (markdown),
and the self-contained HTML report (metric tables, share charts, image grids, the flip gallery)."""
