-- Pandoc Lua filter for the man pages (docs/man/*.md -> roff, cmake/Man.cmake).
--
-- 1. Includes: a paragraph holding only
--      <!-- include FILE [drop="Heading 1|Heading 2"] -->
--    is replaced by the Markdown of FILE (relative to this directory). Its
--    first level-1 heading (the page title) is dropped, the other headings
--    move up one level (## -> man section, ### -> subsection), and the
--    sections whose titles are listed in `drop` are left out with everything
--    under them. So dmsd.yaml(5) is docs/configuration.md itself, never a
--    copy that could drift from it.
-- 2. Tables (key | default | accepted | effect) do not fit an 80-column
--    terminal (and tbl warns about narrow cells): they become definition
--    lists, one entry per row, the first cell as the term, the other cells as
--    "header: text; header: text" and the prose column (effect, meaning) as
--    its own paragraph.
-- 3. Links keep their text only: relative targets (../configs/dmsd.yaml)
--    mean nothing in an installed man page.

local here = PANDOC_SCRIPT_FILE:match("(.*/)") or "./"

local function readFile(path)
    local f = assert(io.open(path, "r"), "man.lua: cannot read " .. path)
    local text = f:read("a")
    f:close()
    return text
end

local function splitDrop(spec)
    local set = {}
    for title in (spec or ""):gmatch("[^|]+") do
        set[title] = true
    end
    return set
end

-- The blocks of an included file, re-levelled, with the dropped sections
-- removed.
local function included(path, drop)
    local doc = pandoc.read(readFile(here .. path), "markdown")
    local out = {}
    local titleSeen = false
    local droppingBelow = nil -- level of the dropped heading we are under
    for _, block in ipairs(doc.blocks) do
        if block.t == "Header" then
            if droppingBelow and block.level <= droppingBelow then
                droppingBelow = nil
            end
            if not droppingBelow and drop[pandoc.utils.stringify(block)] then
                droppingBelow = block.level
            end
        end
        if not droppingBelow then
            if block.t == "Header" and block.level == 1 and not titleSeen then
                titleSeen = true
            else
                if block.t == "Header" then
                    block.level = math.max(1, block.level - 1)
                end
                table.insert(out, block)
            end
        end
    end
    return out
end

local function includeDirective(block)
    if block.t ~= "RawBlock" or block.format ~= "html" then
        return nil
    end
    local file, rest = block.text:match("^<!%-%-%s*include%s+(%S+)(.-)%-%->%s*$")
    if not file then
        return nil
    end
    return file, splitDrop(rest:match('drop="([^"]*)"'))
end

local function cellText(cell)
    return pandoc.utils.stringify(cell)
end

-- Columns whose text is prose: a paragraph of its own, without a label.
local prose = {effect = true, meaning = true}

local function tableToDefinitions(tbl)
    local simple = pandoc.utils.to_simple_table(tbl)
    local items = {}
    for _, row in ipairs(simple.rows) do
        local term = pandoc.utils.blocks_to_inlines(row[1])
        local labelled = {} -- "default: 2s; accepted: 100ms..1h"
        local body = {}
        for i = 2, #row do
            local header = cellText(simple.headers[i] or {})
            local inlines = pandoc.utils.blocks_to_inlines(row[i])
            if #inlines > 0 then
                if prose[header] or header == "" then
                    table.insert(body, pandoc.Para(inlines))
                else
                    if #labelled > 0 then
                        table.insert(labelled, pandoc.Str(";"))
                        table.insert(labelled, pandoc.Space())
                    end
                    table.insert(labelled, pandoc.Emph({pandoc.Str(header .. ":")}))
                    table.insert(labelled, pandoc.Space())
                    for _, inline in ipairs(inlines) do
                        table.insert(labelled, inline)
                    end
                end
            end
        end
        if #labelled > 0 then
            table.insert(body, 1, pandoc.Para(labelled))
        end
        table.insert(items, {term, {body}})
    end
    return pandoc.DefinitionList(items)
end

function Pandoc(doc)
    local blocks = {}
    for _, block in ipairs(doc.blocks) do
        local file, drop = includeDirective(block)
        if file then
            for _, b in ipairs(included(file, drop)) do
                table.insert(blocks, b)
            end
        else
            table.insert(blocks, block)
        end
    end
    doc.blocks = blocks
    -- Tables and links of the included text too: walk the assembled document.
    return doc:walk({
        Table = tableToDefinitions,
        Link = function(link)
            return link.content
        end,
    })
end
