"""Songsmith core: pipeline, models and services shared by the app, the worker and the CLI."""
