//! How each figure of a report is computed, written for its readers (the
//! report's notes and the README say the same).

use watchpost_model::reports::Text;

/// The monthly report's notes: every figure's formula, in terms of the
/// fields of `GET /api/v1/faults`.
pub fn monthly() -> Vec<Text> {
    vec![
        Text::new(
            "统计范围：发生时间（opened_at）落在本月（日历时区）内的故障，来源为 rule 或 reported；演练（source=drill）与维护窗口内被抑制（status=suppressed）的故障不计。可用 GET /api/v1/faults?opened_from=…&opened_before=… 复核。",
            "Scope: faults whose opened_at falls in the month (calendar time zone), of source rule or reported; drills (source=drill) and faults suppressed in a maintenance window (status=suppressed) are not counted. Recompute with GET /api/v1/faults?opened_from=…&opened_before=….",
        ),
        Text::new(
            "MTTA = 平均（acknowledged_at − opened_at），只计已响应的故障；MTTR = 平均（resolved_at − opened_at），只计已解决的故障；单位分钟。P90 为最近秩法：排序后第 ⌈0.9·n⌉ 个值。",
            "MTTA = mean(acknowledged_at − opened_at) over acknowledged faults; MTTR = mean(resolved_at − opened_at) over resolved faults; in minutes. p90 by nearest rank: the ⌈0.9·n⌉-th value in ascending order.",
        ),
        Text::new(
            "时限达标率 = 达标数 ÷ 应达数；应达数为时限已到或已判定（response_met / resolve_met 非空）的故障，时限未到且未判定的不计。",
            "Deadline compliance = met ÷ judged; judged are faults whose deadline has passed or whose response_met / resolve_met is set; deadlines not yet due and not yet met are left out.",
        ),
        Text::new(
            "团队：按通知路由（[[route]]）首个匹配路由的团队；响应人：acknowledged_by。",
            "Team: the team of the first [[route]] that takes the fault; person: acknowledged_by.",
        ),
        Text::new(
            "可用率 = 1 − 不可用时长 ÷ 服务时长。不可用时长为失联类故障（agent_silent 及 unreachable = true 的规则）从发生到解决（未解决则到月末或现在）的时间并集，扣除覆盖该主机的维护窗口；服务时长为本月（至多到现在）按 reports.service_hours 计的时间，扣除维护窗口。",
            "Availability = 1 − unavailable ÷ service time. Unavailable time is the union of unreachability faults (agent_silent and rules with unreachable = true) from opened_at to resolved_at (or the month's end, or now, when unresolved), less maintenance windows covering the host; service time is the month (up to now) under reports.service_hours, less those windows.",
        ),
        Text::new(
            "通知：本月创建的通知行按通道统计送达（delivered）与失败（failed），升级通知为 step > 0 的行；演练的通知不计。",
            "Notifications: outbox rows created in the month, per channel, delivered and failed; escalation steps are rows with step > 0; drills' rows are not counted.",
        ),
        Text::new(
            "变更：计划开始时间在本月内的变更申请，按状态计数。满意度：本月用户报障中有回访的，满意度 1–5 的平均与分布。",
            "Changes: change requests whose window starts in the month, by status. Satisfaction: the month's reported faults with a follow-up, mean and distribution of the 1–5 score.",
        ),
        Text::new(
            "巡检：应检 = 本月每日到期的巡检项（collector.inspections 中 days 所指的日子）之和，至多到今天；已检 = 其中有记录的项；异常 = 最新一次记录（含签字后的更正）为异常的项。可用 GET /api/v1/inspections?date=… 逐日复核。",
            "Inspections: due = the checklist items due on each day of the month (their days in collector.inspections), up to today; done = those with a recording; abnormal = those whose latest recording (amendments included) is abnormal. Recompute day by day with GET /api/v1/inspections?date=….",
        ),
    ]
}

/// The daily inspection record's notes.
pub fn daily() -> Vec<Text> {
    vec![
        Text::new(
            "峰值为分钟均值的最大值（一分钟内的瞬时尖峰不计）；温度、湿度的最低、最高为样本的最小、最大值。数据来自分钟汇总（GET /api/v1/query?step=1m）。",
            "Peaks are the highest minute mean (a spike within one minute does not count); temperature and humidity minimum and maximum are the samples' own. From the minute rollups (GET /api/v1/query?step=1m).",
        ),
        Text::new(
            "可达 % = 1 − 当日被 agent_silent 或 unreachable = true 规则的故障覆盖的时长 ÷ 当日时长；SNMP 设备无此类故障时为 snmp_up 的分钟均值之和 ÷ 有轮询的分钟数。",
            "Reachable % = 1 − time covered by faults of agent_silent or unreachable = true rules ÷ the day's time; for an SNMP device without such faults, the sum of snmp_up's minute means ÷ minutes polled.",
        ),
        Text::new(
            "文件系统最低余量 = 100 − 当日各挂载点使用率的最大值；错误包、丢弃包 = Σ 每分钟速率均值 × 60 秒。",
            "Lowest filesystem headroom = 100 − the highest used % of any mount that day; errors and discards = Σ per-minute mean rate × 60 s.",
        ),
        Text::new(
            "阈值取自规则：高于的最低阈值、低于的最高阈值（各规则最低一级）；超过即标为异常。故障计数不含演练与维护窗口内被抑制的故障；超时 = 日终仍未解决且已过未满足的响应或解决时限。",
            "Limits come from the rules: the lowest threshold a rule fires above and the highest it fires below (each rule's lowest tier); crossing one is marked abnormal. Fault counts leave out drills and faults suppressed by a window; overdue = still unresolved at the day's end and past a response or resolve deadline it had not met.",
        ),
    ]
}
