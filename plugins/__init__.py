"""ALICE's built-in plugins, one folder each, registered through the ``alice``
entry-point group exactly like third-party plugins."""
