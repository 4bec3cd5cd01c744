"""Credit portfolio: reports on the lending book (summary, vintage, roll rates) and its profit and loss."""
