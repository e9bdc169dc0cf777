"""Carbon (kg CO2e) and cost (EUR) per section and trip, budgets, advice, and the monthly
export to the cooperative carbon aggregator. Factors and tariffs are versioned data files."""
