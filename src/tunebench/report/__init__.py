"""Reading a compare's output folder: diagnostics, recommendations and a self-contained HTML report.

    tunebench.report.output      load_output: a compare's folder as records, rows and facts
    tunebench.report.diagnostics diagnose (one run); leaderboard_checks: diagnose_output (a folder)
    tunebench.report.rules       advise (before training); recommend: analyse (after a compare)
    tunebench.report.html        write_html

Everything here is a pure function of the run records (and the logits stored beside them), so it works
on any finished or interrupted output folder; what it knows of strategies and tasks it reads from their
registries.
"""
