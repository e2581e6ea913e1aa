"""The RQ worker process: `python -m worker` runs pipeline steps from the Songsmith queues."""
