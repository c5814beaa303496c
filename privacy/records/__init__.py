"""What the studio writes down about a person's data, and the words it shows them: the audit log (no personal
data), signed erasure receipts, and the privacy notice (the policy and its version). Below teams and lifecycle,
which both record and sign; imports only the store and the settings.
"""
