"""Kept for plugins and tests written against ALICE 0.1: import from :mod:`alice.plugin` instead."""

from alice.plugin.manager import get_registry, plugin_manager, register_plugin, unregister_plugin  # noqa: F401
