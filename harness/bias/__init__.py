"""Parts of the bias suite: group metrics (Fairlearn), template sets, identity fillers, census
names and counterfactual swaps. Heavy imports (pandas, fairlearn) stay inside functions."""
