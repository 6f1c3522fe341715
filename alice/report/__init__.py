"""``alice report``: an HTML page with the evaluation tables, the latent map and search examples.

:func:`alice.report.page.build_report` writes it; :class:`alice.config.report.ReportSpec` says what it shows.
"""
