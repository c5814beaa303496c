"""Where data rests: the vault (per-session keys, AES-256-GCM blobs, crypto-shredding), the metadata database,
the master key and key files, private directories, return keys and the owner keys held in memory.
"""
