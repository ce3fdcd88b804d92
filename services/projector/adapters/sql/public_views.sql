-- The operators' contract: names and columns stay stable whatever the generation.
-- {s} is replaced by the generation's schema name; run in the swap's transaction (activate).

CREATE OR REPLACE VIEW public.venues AS
SELECT district, venue_id, name, kind, street, address,
       first_responsible_name, first_responsible_phone, officer_name, officer_phone,
       registered_at
FROM {s}.venues;

-- 逾期天数 as the bureau counts them, the same as services/common/overdue.py: the started days
-- (24-hour spans from the deadline's instant) after the deadline; 0 at or before it.
CREATE OR REPLACE FUNCTION public.days_overdue(due_at timestamptz, at timestamptz)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN at <= due_at THEN 0
                ELSE ceil(extract(epoch FROM at - due_at) / 86400)::integer END
$$;

CREATE OR REPLACE VIEW public.issue_status AS
SELECT issue_id, district, venue_id, phase, item_code, category, severity,
       CASE WHEN closed_at IS NOT NULL THEN 'closed'
            WHEN due_at IS NULL THEN 'open'
            WHEN due_at < now() THEN 'overdue'
            ELSE 'rectifying' END AS status,
       found_at, due_at, order_no, closed_at, closed_on_time, recheck_failures, rebound,
       assignee, description,
       -- Appended (a view only gains columns at its end): "on time" against the first deadline.
       original_due_at, extensions,
       CASE WHEN closed_at IS NULL THEN NULL
            ELSE original_due_at IS NULL OR closed_at <= original_due_at
       END AS closed_on_time_original,
       -- Appended: 逾期天数 of an overdue issue now (NULL when it is not overdue).
       CASE WHEN closed_at IS NULL AND due_at < now() THEN public.days_overdue(due_at, now())
       END AS days_overdue
FROM {s}.issues;

-- One row per (venue, phase) with any activity, and one per venue registered before a phase of
-- the campaign ended, for each such phase that has started (cw.campaign_phases, written by cw
-- init), with zeros when nothing happened there: coverage, so a venue never inspected in a phase
-- shows, and a venue registered in 2026 is not one the 2023 self-check missed.
CREATE OR REPLACE VIEW public.venue_phase_summary AS
WITH places AS (
    SELECT district, venue_id, phase FROM {s}.venue_phase_counts
    UNION
    SELECT v.district, v.venue_id, p.phase
    FROM {s}.venues v CROSS JOIN cw.campaign_phases p
    WHERE p.starts_at <= now() AND (p.ends_at IS NULL OR v.registered_at < p.ends_at)
)
SELECT r.district, r.venue_id, COALESCE(v.kind, 'unregistered') AS venue_kind, r.phase,
       COALESCE(c.inspections, 0) AS inspections,
       COALESCE(c.issues_found, 0) AS issues_found,
       COALESCE(o.issues_open, 0) AS issues_open,
       COALESCE(o.issues_overdue, 0) AS issues_overdue,
       COALESCE(c.issues_closed, 0) AS issues_closed,
       COALESCE(c.closed_on_time, 0) AS closed_on_time,
       COALESCE(c.recheck_failures, 0) AS recheck_failures,
       COALESCE(c.rebounds, 0) AS rebounds,
       c.last_inspected_at,
       COALESCE(c.inspections_self_check, 0) AS inspections_self_check,
       COALESCE(c.inspections_supervision, 0) AS inspections_supervision,
       COALESCE(c.inspections_look_back, 0) AS inspections_look_back,
       COALESCE(c.inspections_re_review, 0) AS inspections_re_review,
       COALESCE(c.items_checked, 0) AS items_checked,
       COALESCE(c.items_failed, 0) AS items_failed,
       (c.items_checked - c.items_failed)::double precision / NULLIF(c.items_checked, 0)
           AS pass_rate
FROM places r
LEFT JOIN {s}.venue_phase_counts c
       ON c.district = r.district AND c.venue_id = r.venue_id AND c.phase = r.phase
LEFT JOIN {s}.venues v ON v.district = r.district AND v.venue_id = r.venue_id
LEFT JOIN LATERAL (
    SELECT count(*)::integer AS issues_open,
           (count(*) FILTER (WHERE i.due_at < now()))::integer AS issues_overdue
    FROM {s}.issues i
    WHERE i.district = r.district AND i.venue_id = r.venue_id AND i.phase = r.phase
      AND i.closed_at IS NULL
) o ON true;

CREATE OR REPLACE VIEW public.phase_summary AS
SELECT phase, venue_kind,
       (count(*) FILTER (WHERE inspections > 0))::integer AS venues_inspected,
       sum(inspections)::integer AS inspections,
       sum(issues_found)::integer AS issues_found,
       sum(issues_open)::integer AS issues_open,
       sum(issues_overdue)::integer AS issues_overdue,
       sum(issues_closed)::integer AS issues_closed,
       sum(closed_on_time)::integer AS closed_on_time,
       sum(recheck_failures)::integer AS recheck_failures,
       sum(rebounds)::integer AS rebounds,
       max(last_inspected_at) AS last_inspected_at,
       count(*)::integer AS venues,
       sum(inspections_self_check)::integer AS inspections_self_check,
       sum(inspections_supervision)::integer AS inspections_supervision,
       sum(inspections_look_back)::integer AS inspections_look_back,
       sum(inspections_re_review)::integer AS inspections_re_review,
       sum(items_checked)::integer AS items_checked,
       sum(items_failed)::integer AS items_failed,
       sum(items_checked - items_failed)::double precision / NULLIF(sum(items_checked), 0)
           AS pass_rate
FROM public.venue_phase_summary
GROUP BY phase, venue_kind;

CREATE OR REPLACE VIEW public.event_archive AS
SELECT stream_seq, event_id, event_type, district, venue_id, phase, occurred_at, subject,
       convert_from(payload, 'UTF8')::json AS payload, recorded_at
FROM {s}.event_archive;

-- The district's own figures: phase_summary per district (several districts share a deployment).
CREATE OR REPLACE VIEW public.district_phase_summary AS
SELECT district, phase, venue_kind,
       (count(*) FILTER (WHERE inspections > 0))::integer AS venues_inspected,
       sum(inspections)::integer AS inspections,
       sum(issues_found)::integer AS issues_found,
       sum(issues_open)::integer AS issues_open,
       sum(issues_overdue)::integer AS issues_overdue,
       sum(issues_closed)::integer AS issues_closed,
       sum(closed_on_time)::integer AS closed_on_time,
       sum(recheck_failures)::integer AS recheck_failures,
       sum(rebounds)::integer AS rebounds,
       max(last_inspected_at) AS last_inspected_at,
       count(*)::integer AS venues,
       sum(inspections_self_check)::integer AS inspections_self_check,
       sum(inspections_supervision)::integer AS inspections_supervision,
       sum(inspections_look_back)::integer AS inspections_look_back,
       sum(inspections_re_review)::integer AS inspections_re_review,
       sum(items_checked)::integer AS items_checked,
       sum(items_failed)::integer AS items_failed,
       sum(items_checked - items_failed)::double precision / NULLIF(sum(items_checked), 0)
           AS pass_rate
FROM public.venue_phase_summary
GROUP BY district, phase, venue_kind;

-- The street offices' roll-up (街道): a venue counts under the street of its registration; a
-- venue not yet registered has no street (NULL).
CREATE OR REPLACE VIEW public.street_summary AS
SELECT s.district, v.street, s.phase,
       count(*)::integer AS venues,
       (count(*) FILTER (WHERE s.inspections > 0))::integer AS venues_inspected,
       sum(s.inspections)::integer AS inspections,
       sum(s.issues_found)::integer AS issues_found,
       sum(s.issues_open)::integer AS issues_open,
       sum(s.issues_overdue)::integer AS issues_overdue,
       sum(s.issues_closed)::integer AS issues_closed,
       sum(s.closed_on_time)::integer AS closed_on_time,
       sum(s.rebounds)::integer AS rebounds,
       sum(s.items_checked)::integer AS items_checked,
       sum(s.items_failed)::integer AS items_failed,
       sum(s.items_checked - s.items_failed)::double precision / NULLIF(sum(s.items_checked), 0)
           AS pass_rate
FROM public.venue_phase_summary s
LEFT JOIN {s}.venues v ON v.district = s.district AND v.venue_id = s.venue_id
GROUP BY s.district, v.street, s.phase;

-- Follow-ups (RectificationDue, RecheckPassed …) waiting for their IssueFound: the projector keeps
-- them until it comes (cw report waiting; cw_projector_waiting_follow_ups*). waiting_since is when
-- the projector took one; occurred_at is the event's own time.
CREATE OR REPLACE VIEW public.waiting_follow_ups AS
SELECT p.district, e.data ->> 'venue_id' AS venue_id, p.issue_id,
       e.data ->> 'event_type' AS event_type, (e.data ->> 'event_id')::uuid AS event_id,
       (e.data ->> 'occurred_at')::timestamptz AS occurred_at, p.waiting_since, p.stream_seq,
       p.subject
FROM {s}.pending_issue_events p
CROSS JOIN LATERAL (SELECT p.payload::jsonb AS data) e;
