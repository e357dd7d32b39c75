"""Reports: terminal tables now; JSON, HTML and CI summaries as the stages land."""
