"""Settlement and the park carbon ledger.

Consumes awards and metering, settles each park-day (three-part energy, deviation,
regulation, demand response, grid import, storage degradation, green certificates), shares
flexibility revenue with the enterprises, keeps a hash-chained double-entry carbon ledger
and renders reports. The worker (:mod:`settlement.worker`) is a thin shell over the pure
day settlement in :mod:`settlement.day`; see ``settlement/README.md``.
"""
