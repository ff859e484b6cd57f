"""The fault-injection suite: real ``plp worker`` and ``plp clock`` processes, SIGKILLed; a Redis of
its own, stopped and started again; providers (the simulators) failing at seeded rates.

It runs with the other tests (marked ``faults``; ``-m "not faults"`` leaves it out). Each test
prints ``seed=<n>``; ``PLP_FAULT_SEED=<n>`` replays its random choices (which faults each
delivery meets, when the kills and the restart come; the timing of processes still varies).
What each test measured is printed at the end of the run, under "fault-injection figures".

Repeat it ten times:

    for i in $(seq 10); do .venv/bin/python -m pytest tests/faults -q || break; done
"""
