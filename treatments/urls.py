from django.urls import include, path

from treatments.views import catalogue, recall

urlpatterns = [
    path("catalogue/", catalogue.catalogue, name="catalogue"),
    path("catalogue/products/new/", catalogue.product_edit, name="product_create"),
    path("catalogue/products/<int:product_id>/", catalogue.product_edit, name="product_edit"),
    path("catalogue/products/<int:product_id>/lots/new/", catalogue.lot_create, name="lot_create"),
    path("catalogue/lots/<int:lot_id>/recall/", catalogue.lot_recall_view, name="lot_recall"),
    path("catalogue/ingredients/new/", catalogue.ingredient_edit, name="ingredient_create"),
    path("catalogue/ingredients/<int:ingredient_id>/", catalogue.ingredient_edit, name="ingredient_edit"),
    path("catalogue/limits/new/", catalogue.dose_limit_edit, name="dose_limit_create"),
    path("catalogue/limits/<int:limit_id>/", catalogue.dose_limit_edit, name="dose_limit_edit"),
    path("catalogue/lots/<int:lot_id>/", recall.lot_recall_detail, name="lot_recall_detail"),
    path("catalogue/lots/<int:lot_id>/notify/", recall.lot_recall_notify, name="lot_recall_notify"),
    path("", include("treatments.urls_plans")),
    path("", include("treatments.urls_documents")),
    path("", include("treatments.urls_adverse")),
    path("", include("treatments.urls_booking")),
    path("", include("treatments.urls_schedule")),
    path("", include("treatments.urls_feeds")),
]
