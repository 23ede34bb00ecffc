"""The Hat as the tournament host plays it: rules, players, hats and tournaments."""
