"""What makes a reference space trustworthy: ``space.json`` and the digest (``record``), a space described
without torch (``describe``), and the end-to-end check of every file (``verify``)."""
