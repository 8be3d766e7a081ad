"""AGC ttbar physics: selection, systematics, histogramming, comparison."""
