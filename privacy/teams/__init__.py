"""Teams: a company's one look (team_look), sealed shares only by a member's own act (team_shares, team_seal),
the team registry and invites (teams), and the operator's keys (operator_keys).
"""
