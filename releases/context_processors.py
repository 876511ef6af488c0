"""What every page's top bar shows: how many requests, release trains and inconclusive
verifications wait for the caller's decision (one query for all three)."""

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, Subquery, Value
from django.db.models.functions import Coalesce

from releases.selectors import approvals_waiting_for, judgements_waiting_for
from releases.trains import trains_waiting_query


def _count(queryset) -> Coalesce:
    counted = queryset.order_by().annotate(one=Value(1)).values("one").annotate(n=Count("*"))
    return Coalesce(Subquery(counted.values("n")), 0, output_field=IntegerField())


def approvals(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    user = request.user
    waiting = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            requests_waiting=_count(approvals_waiting_for(user)),
            judgements_waiting=_count(judgements_waiting_for(user)),
            trains_waiting=_count(trains_waiting_query(user)),
        )
        .values_list("requests_waiting", "judgements_waiting", "trains_waiting")
        .first()
    ) or (0, 0, 0)
    return {"approvals_waiting": sum(waiting)}
