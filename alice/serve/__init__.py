"""``alice serve``: a search API and a web page over one loaded space.

:func:`alice.serve.app.create_app` loads the space, its backbones and its indexes once
(:class:`alice.serve.state.Served`) and answers JSON requests (:mod:`alice.serve.routes`) and
the page (``page.html``, served as it is: no build step, nothing from the network). It sits
above :mod:`alice.api`, :mod:`alice.search` and :mod:`alice.report` and below the CLI; FastAPI
and uvicorn are imported only here.
"""
