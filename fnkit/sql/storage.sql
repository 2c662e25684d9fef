-- =============================================================================================
-- storage.sql: the rest of what Supabase Storage keeps in the database, for the local Storage
-- (fnkit/local/storage) on plain Postgres. Applied right after bootstrap.sql, never on a real
-- Supabase database, where Storage's own migrations (supabase/storage migrations/tenant/*.sql)
-- made these columns and functions. Only what the local service uses, with the real names,
-- types and defaults, so a query written against it runs unchanged on either. Idempotent.
-- =============================================================================================

-- 0012-add-automatic-avif-detection-flag, 0013-add-bucket-custom-limits (already in bootstrap)
alter table storage.buckets add column if not exists avif_autodetection bool default false;

-- 0018-add_owner_id_column_deprecate_owner: the owner as text (any JWT `sub`, not only uuids)
alter table storage.objects add column if not exists owner_id text default null;
alter table storage.buckets add column if not exists owner_id text default null;

-- 0025-custom-metadata: the caller's own metadata, beside Storage's `metadata`
alter table storage.objects add column if not exists user_metadata jsonb null;

-- 0038-iceberg-catalog-flag-on-buckets: a bucket's type, listed by GET /bucket
do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where n.nspname = 'storage' and t.typname = 'buckettype'
  ) then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS');
  end if;
end
$$;
alter table storage.buckets
  add column if not exists type storage.buckettype not null default 'STANDARD';

-- storage.search: the listing `POST /object/list/{bucket}` runs, as the caller (security
-- invoker, so the policies on storage.objects filter it). The same signature and answers as
-- Storage's (0063-fix-search-name-relative-to-prefix): the entries directly under `prefix`
-- whose name starts with prefix || search (case-insensitively); a deeper name shows up once as
-- its folder (every column null but `name`); names are relative to the prefix. Sorted by name
-- (folders and files interleaved, byte order of the lower-cased key) or, for another column,
-- folders first by name, then files by that column. `levels` is unused, as in Storage.
create or replace function storage.search(
  prefix text,
  bucketname text,
  limits int default 100,
  levels int default 1,
  offsets int default 0,
  search text default '',
  sortcolumn text default 'name',
  sortorder text default 'asc'
)
returns table (
  name text,
  id uuid,
  updated_at timestamptz,
  created_at timestamptz,
  last_accessed_at timestamptz,
  metadata jsonb
)
language sql
stable
security invoker
as $$
  with params as (
    select
      coalesce(prefix, '') as base,
      lower(coalesce(prefix, '') || coalesce(search, '')) as wanted,
      lower(coalesce(sortorder, 'asc')) <> 'desc' as ascending,
      case lower(coalesce(sortcolumn, 'name'))
        when 'updated_at' then 'updated_at'
        when 'created_at' then 'created_at'
        when 'last_accessed_at' then 'last_accessed_at'
        else 'name'
      end as sort_by
  ),
  matched as (
    select o.*, p.base, p.wanted,
      pg_catalog.strpos(pg_catalog.substr(o.name, pg_catalog.length(p.wanted) + 1), '/') as cut
    from storage.objects o, params p
    where o.bucket_id = bucketname
      and pg_catalog.left(pg_catalog.lower(o.name), pg_catalog.length(p.wanted)) = p.wanted
  ),
  entries as (
    select distinct on (pg_catalog.lower(pg_catalog.left(m.name, pg_catalog.length(m.wanted) + m.cut)))
      pg_catalog.substr(pg_catalog.left(m.name, pg_catalog.length(m.wanted) + m.cut - 1),
        pg_catalog.length(m.base) + 1) as name,
      null::uuid as id, null::timestamptz as updated_at, null::timestamptz as created_at,
      null::timestamptz as last_accessed_at, null::jsonb as metadata,
      pg_catalog.lower(pg_catalog.left(m.name, pg_catalog.length(m.wanted) + m.cut)) as sort_key,
      true as is_folder
    from matched m
    where m.cut > 0
    union all
    select pg_catalog.substr(m.name, pg_catalog.length(m.base) + 1), m.id, m.updated_at,
      m.created_at, m.last_accessed_at, m.metadata, pg_catalog.lower(m.name), false
    from matched m
    where m.cut = 0
  )
  select e.name, e.id, e.updated_at, e.created_at, e.last_accessed_at, e.metadata
  from entries e, params p
  order by
    case when p.sort_by <> 'name' then not e.is_folder end,
    case when p.ascending and p.sort_by = 'updated_at' then e.updated_at end asc,
    case when not p.ascending and p.sort_by = 'updated_at' then e.updated_at end desc,
    case when p.ascending and p.sort_by = 'created_at' then e.created_at end asc,
    case when not p.ascending and p.sort_by = 'created_at' then e.created_at end desc,
    case when p.ascending and p.sort_by = 'last_accessed_at' then e.last_accessed_at end asc,
    case when not p.ascending and p.sort_by = 'last_accessed_at' then e.last_accessed_at end desc,
    case when p.ascending then e.sort_key collate "C" end asc,
    case when not p.ascending then e.sort_key collate "C" end desc
  limit least(coalesce(limits, 100), 1500) offset coalesce(offsets, 0)
$$;

grant execute on function storage.search(text, text, int, int, int, text, text, text)
  to anon, authenticated, service_role;
