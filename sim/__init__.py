"""The simulated outside world: synthetic but physically grounded history, and delivery.

Everything here is deterministic for a scenario and its ``simulation.seed``. None of it is
measured data; README.md says so and explains how it is made.
"""
