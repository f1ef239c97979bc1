from treatments.models.catalogue import DoseLimit, Ingredient, Lot, Product, ProductComponent

__all__ = ["DoseLimit", "Ingredient", "Lot", "Product", "ProductComponent"]
